"""Sections of a benchmarks/RESULTS-*.md file that several scripts write:
each script replaces only its own section, between HTML comment markers,
and leaves the rest of the file (other sections, hand-written notes) as it is."""
import os


def _markers(name: str):
    return f"<!-- begin {name} -->", f"<!-- end {name} -->"


def read_section(path: str, name: str) -> str:
    """The text of section `name` of path, as replace_section wrote it (KeyError if it has none)."""
    begin, end = _markers(name)
    with open(path, encoding="utf-8") as results:
        content = results.read()
    if begin not in content or end not in content:
        raise KeyError(f"{path} has no section {name}")
    return content.split(begin + "\n", 1)[1].split("\n" + end, 1)[0]


def replace_section(path: str, name: str, text: str, title: str = "") -> None:
    """Writes text as section `name` of path (appended if the file has none; a new
    file starts with title)."""
    begin, end = _markers(name)
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    content = title + "\n" if title else ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as results:
            content = results.read()
    if begin in content and end in content:
        before, rest = content.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        content = before + block + ("\n" + after if after else "")
    else:
        content = (content.rstrip() + "\n\n" if content.strip() else "") + block
    with open(path, "w", encoding="utf-8") as results:
        results.write(content)
