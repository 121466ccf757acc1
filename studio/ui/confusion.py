"""A classifier's result as the user sees it: a confusion matrix, per-class accuracy and the matrix as a picture."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PIL import Image, ImageDraw, ImageFont

CELL = 36  # pixels per matrix cell
FONT_SIZE = 12


def confusion_matrix(pairs: Iterable[tuple[int, int]], num_classes: int) -> list[list[int]]:
    """`matrix[true][predicted]` counts of `(true, predicted)` class-index pairs."""
    matrix = [[0] * num_classes for _ in range(num_classes)]
    for true, predicted in pairs:
        matrix[true][predicted] += 1
    return matrix


def per_class_accuracy(matrix: Sequence[Sequence[int]]) -> list[float | None]:
    """Each class's share of correct predictions (None for a class without examples)."""
    return [row[i] / sum(row) if sum(row) else None for i, row in enumerate(matrix)]


def result_markdown(split: str, matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """The accuracy on `split` and a table of per-class accuracy, as Markdown."""
    total = sum(map(sum, matrix))
    correct = sum(matrix[i][i] for i in range(len(matrix)))
    lines = [
        f"**{split} accuracy: {correct / max(total, 1):.1%}** ({correct} of {total} images)",
        "",
        "| class | accuracy | images |",
        "|---|---|---|",
    ]
    for name, row, accuracy in zip(classes, matrix, per_class_accuracy(matrix), strict=True):
        shown = "–" if accuracy is None else f"{accuracy:.0%}"
        lines.append(f"| {name} | {shown} | {sum(row)} |")
    return "\n".join(lines)


def confusion_picture(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> Image.Image:
    """The matrix drawn as a picture: rows are the true classes, columns the predicted ones, bluer = more of the row."""
    font = ImageFont.load_default(FONT_SIZE)
    names = [str(c)[:16] for c in classes]
    margin = max(int(font.getlength(n)) for n in names) + 12
    n = len(matrix)
    size = (margin + n * CELL + 8, margin + n * CELL + 24)
    picture = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    draw.text((margin, 4), "predicted", fill="black", font=font)
    top = 24
    for i, row in enumerate(matrix):
        draw.text((4, top + margin + i * CELL + CELL // 3), names[i], fill="black", font=font)
        total = max(sum(row), 1)
        for j, count in enumerate(row):
            shade = int(255 * (1 - count / total))
            x, y = margin + j * CELL, top + margin + i * CELL
            draw.rectangle([x, y, x + CELL - 1, y + CELL - 1], fill=(shade, shade, 255), outline="grey")
            draw.text(
                (x + CELL // 3, y + CELL // 3),
                str(count),
                fill="white" if shade < 128 else "black",
                font=font,
            )
    for j, name in enumerate(names):  # column labels, written vertically above the matrix
        label = Image.new("RGB", (margin, CELL), "white")
        ImageDraw.Draw(label).text((4, CELL // 3), name, fill="black", font=font)
        picture.paste(label.rotate(90, expand=True), (margin + j * CELL, top))
    return picture
