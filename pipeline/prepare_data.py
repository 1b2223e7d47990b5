"""`catsdogs prepare-data`: builds the SPLIT/CLASS/ folders the pipeline reads.

--kaggle-train DIR reproduces the book's split (listing 5.4) from Kaggle's
Dogs vs. Cats train/ folder of cat.N.jpg / dog.N.jpg files: per class, indices
0-999 train, 1000-1499 validation, 1500-1999 test (sizes configurable).
"""
import argparse
import dataclasses
import os
import re
import shutil
import sys
from typing import Dict, List

# Kaggle file prefix -> class folder name (the book's folder names)
KAGGLE_CLASSES = {"cat": "cats", "dog": "dogs"}
_KAGGLE_NAME = re.compile(r"^(cat|dog)\.(\d+)\.jpg$")


class PrepareDataError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class SplitSizes:
    """Images per class in each split, taken in index order (the book: 1000/500/500)."""
    train: int = 1000
    validation: int = 500
    test: int = 500

    def ranges(self) -> Dict[str, range]:
        return {"train": range(0, self.train),
                "validation": range(self.train, self.train + self.validation),
                "test": range(self.train + self.validation, self.train + self.validation + self.test)}


def kaggle_split(kaggle_train_dir: str, out_dir: str, sizes: SplitSizes = SplitSizes(),
                 link: bool = False) -> Dict[str, Dict[str, int]]:
    """Copies (or hard-links) the book's split; returns counts per split and class."""
    if not os.path.isdir(kaggle_train_dir):
        raise PrepareDataError(f"Kaggle train folder {kaggle_train_dir} does not exist "
                               "(expected the unzipped train/ folder with cat.N.jpg and dog.N.jpg)")
    available = {prefix: set() for prefix in KAGGLE_CLASSES}
    for name in os.listdir(kaggle_train_dir):
        match = _KAGGLE_NAME.match(name)
        if match:
            available[match.group(1)].add(int(match.group(2)))
    plan: List[tuple] = []
    for prefix, class_name in KAGGLE_CLASSES.items():
        for split, indices in sizes.ranges().items():
            missing = [i for i in indices if i not in available[prefix]]
            if missing:
                raise PrepareDataError(
                    f"{len(missing)} of the {len(indices)} {split} images for {class_name} are missing in "
                    f"{kaggle_train_dir}, e.g. {prefix}.{missing[0]}.jpg; "
                    f"{len(available[prefix])} {prefix}.N.jpg files found")
            plan.extend((split, class_name, f"{prefix}.{i}.jpg") for i in indices)
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise PrepareDataError(f"output folder {out_dir} is not empty; choose a new one")
    counts: Dict[str, Dict[str, int]] = {}
    for done, (split, class_name, name) in enumerate(plan, start=1):
        target_dir = os.path.join(out_dir, split, class_name)
        os.makedirs(target_dir, exist_ok=True)
        source, target = os.path.join(kaggle_train_dir, name), os.path.join(target_dir, name)
        os.link(source, target) if link else shutil.copyfile(source, target)
        counts.setdefault(split, {}).setdefault(class_name, 0)
        counts[split][class_name] += 1
        if done % 1000 == 0 or done == len(plan):
            print(f"prepare-data: {done}/{len(plan)} files", file=sys.stderr)
    return counts


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--kaggle-train", required=True, metavar="DIR",
                        help="Kaggle Dogs vs. Cats train/ folder (cat.N.jpg, dog.N.jpg)")
    parser.add_argument("--out", required=True, metavar="DIR", help="new folder for train/validation/test")
    defaults = SplitSizes()
    for split in ("train", "validation", "test"):
        parser.add_argument(f"--{split}-per-class", type=int, default=getattr(defaults, split),
                            help=f"images per class in {split} (default: %(default)s, the book's)")
    parser.add_argument("--link", action="store_true", help="hard-link instead of copying")


def run(args: argparse.Namespace) -> int:
    sizes = SplitSizes(args.train_per_class, args.validation_per_class, args.test_per_class)
    try:
        counts = kaggle_split(args.kaggle_train, args.out, sizes, link=args.link)
    except PrepareDataError as error:
        print(f"prepare-data: {error}", file=sys.stderr)
        return 2
    for split, per_class in counts.items():
        print(f"{split}: " + ", ".join(f"{name} {n}" for name, n in sorted(per_class.items())))
    print(f"Data ready: {os.path.abspath(args.out)} (use --data-dir {args.out})")
    return 0
