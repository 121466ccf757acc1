"""The ViT tab's result: test accuracy, per-class accuracy and the confusion matrix as a picture."""

import pytest
from PIL import Image

from studio.ui.confusion import confusion_matrix, confusion_picture, per_class_accuracy, result_markdown
from studio.ui.tabs.vit import start
from studio.ui.tasks.vit import CONFUSION_PICTURE, read_result


def test_the_confusion_matrix_and_per_class_accuracy():
    matrix = confusion_matrix([(0, 0), (0, 1), (1, 1), (2, 2), (2, 2), (2, 0)], 4)
    assert matrix == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    assert per_class_accuracy(matrix) == [0.5, 1.0, pytest.approx(2 / 3), None]
    text = result_markdown("test", matrix, ["star", "heart", "crescent", "arrow"])
    assert "test accuracy: 66.7%** (4 of 6 images)" in text
    assert "| crescent | 67% | 3 |" in text and "| arrow | – | 0 |" in text
    picture = confusion_picture(matrix, ["star", "heart", "crescent", "arrow"])
    assert picture.width > 4 * 36 and picture.height > 4 * 36


def test_a_finished_run_writes_the_result_the_tab_shows(studio):
    job_id = start(
        studio, "bundled task", "novel-shapes", None, "studio/shapes-vit", "", "ssf", 1, 1e-2, 16, "", {}
    )
    job = studio.jobs.wait(job_id, timeout=300)
    assert job.status == "done", job.message
    folder = studio.jobs.job_folder(job_id)
    record = read_result(folder)
    assert record["split"] == "test" and len(record["classes"]) == 4
    matrix = record["confusion"]
    assert [sum(row) for row in matrix] == [25] * 4  # every test image, once, under its true class
    accuracy = sum(matrix[i][i] for i in range(4)) / 100
    assert accuracy == pytest.approx(studio.library.entries(domain="vision")[0].metrics["test_accuracy"])
    Image.open(folder / CONFUSION_PICTURE).verify()
