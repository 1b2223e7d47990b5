"""Turn explanation arrays into pictures, as the book displays them."""
import dataclasses
from typing import Optional, Sequence

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont


@dataclasses.dataclass(frozen=True)
class GridStyle:
    images_per_row: int = 16
    margin: int = 1
    colormap: str = "viridis"
    title_height: int = 14


def normalise_channel(channel: np.ndarray) -> np.ndarray:
    """The book's display normalisation of one activation channel -> uint8."""
    x = channel.astype(np.float64) - channel.mean()
    std = x.std()
    if std > 0:
        x /= std
    return np.clip(x * 64 + 128, 0, 255).astype(np.uint8)


def deprocess_pattern(pattern: np.ndarray) -> np.ndarray:
    """The book's deprocess_image: a gradient-ascent input -> displayable uint8 RGB
    (a grayscale model's one channel is shown as grey)."""
    x = pattern.astype(np.float64) - pattern.mean()
    x /= x.std() + 1e-5
    image = (np.clip(x * 0.1 + 0.5, 0, 1) * 255).astype(np.uint8)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def enlarge_small(image: np.ndarray, min_side: int = 224) -> np.ndarray:
    """An image smaller than min_side (a 28x28 digit) scaled up by a whole factor,
    pixels kept sharp, so that a heatmap over it can be seen."""
    side = max(image.shape[:2])
    if side >= min_side:
        return image
    factor = -(-min_side // side)
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def tile(tiles: Sequence[np.ndarray], per_row: int, margin: int, fill: int = 0) -> np.ndarray:
    """Arrange equally sized tiles (2-D or HxWxC) row by row with a margin between them."""
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // per_row)
    cols = min(per_row, len(tiles))
    shape = (rows * h + (rows - 1) * margin, cols * w + (cols - 1) * margin) + tiles[0].shape[2:]
    grid = np.full(shape, fill, dtype=tiles[0].dtype)
    for i, t in enumerate(tiles):
        r, c = divmod(i, per_row)
        grid[r * (h + margin):r * (h + margin) + h, c * (w + margin):c * (w + margin) + w] = t
    return grid


def apply_colormap(gray: np.ndarray, name: str) -> np.ndarray:
    """uint8 2-D -> uint8 RGB through a matplotlib colour map."""
    rgba = matplotlib.colormaps[name](gray.astype(np.float64) / 255.0)
    return (rgba[..., :3] * 255).astype(np.uint8)


def with_title(image: np.ndarray, title: str, style: GridStyle = GridStyle()) -> np.ndarray:
    """Add a one-line caption above an RGB image (white band, black text)."""
    canvas = Image.new("RGB", (image.shape[1], image.shape[0] + style.title_height), "white")
    canvas.paste(Image.fromarray(image), (0, style.title_height))
    ImageDraw.Draw(canvas).text((2, 1), title, fill="black", font=ImageFont.load_default())
    return np.asarray(canvas)


def activation_grid(activation: np.ndarray, style: GridStyle = GridStyle(),
                    title: Optional[str] = None) -> np.ndarray:
    """One layer's activation [h, w, channels] -> RGB grid, every channel normalised."""
    channels = [normalise_channel(activation[..., c]) for c in range(activation.shape[-1])]
    grid = apply_colormap(tile(channels, style.images_per_row, style.margin), style.colormap)
    return with_title(grid, title, style) if title else grid


def pattern_grid(patterns: np.ndarray, per_row: int = 8, margin: int = 5,
                 title: Optional[str] = None) -> np.ndarray:
    """Filter patterns [n, size, size, 3] (raw gradient-ascent inputs) -> RGB grid."""
    grid = tile([deprocess_pattern(p) for p in patterns], per_row, margin)
    return with_title(grid, title) if title else grid


def superimpose(original: np.ndarray, heatmap: np.ndarray, intensity: float = 0.4,
                colormap: str = "jet") -> np.ndarray:
    """Grad-CAM picture: heatmap [h, w] in [0, 1] upscaled to the original image,
    coloured with `colormap`, times `intensity`, added to the image (book 5.4.3)."""
    heat = Image.fromarray(np.uint8(np.clip(heatmap, 0, 1) * 255))
    heat = np.asarray(heat.resize((original.shape[1], original.shape[0]), Image.BILINEAR))
    coloured = apply_colormap(heat, colormap).astype(np.float64)
    return np.clip(coloured * intensity + original.astype(np.float64), 0, 255).astype(np.uint8)
