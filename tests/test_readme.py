"""The README's promises: its worked example runs and prints the deck's numbers; its test command
is the one CI runs."""

import re
from pathlib import Path

import numpy as np

README = (Path(__file__).parents[1] / "README.md").read_text()


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README, re.S)


def test_worked_example_block(capsys):
    block = next(b for b in python_blocks() if "set_weights" in b)
    namespace = {}
    exec(block, namespace)
    out = capsys.readouterr().out
    assert "[[0.6177" in out and "0.8291" in out
    np.testing.assert_allclose(namespace["captured"].caches[0].a, [[0.98, 0.12]], atol=0.005)


def test_ci_runs_the_readme_test_command():
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]" && python -m pytest' in README
    assert 'pip install --quiet -e ".[test]"\npython -m pytest' in ci
    assert "apt-get install chromium fonts-noto-cjk" in README
    assert "apt-get install -y -qq chromium fonts-noto-cjk" in ci


def test_functional_api_block(capsys):
    block = next(b for b in python_blocks() if "outputs={" in b)
    namespace = {}
    exec(block, namespace)
    out = capsys.readouterr().out
    assert "Connected to" in out
    assert set(namespace["model"].history.history) == {
        "loss",
        "digit_loss",
        "size_loss",
        "digit_accuracy",
    }


def test_your_own_layer_and_loss_block(capsys):
    block = next(b for b in python_blocks() if "class Scale(Layer)" in b)
    exec(block, {})
    report = capsys.readouterr().out
    assert "all gradients agree" in report and "MISMATCH" not in report
    assert "scale" in report  # the user's own layer was checked, not skipped


def test_the_keras_way_block(capsys):
    block = next(b for b in python_blocks() if "custom_mean_squared_error" in b)
    exec(block, {})
    out = capsys.readouterr().out
    assert "all gradients agree" in out and "MISMATCH" not in out
    assert "t1 = matmul(x, variable)" in out and "t1 = tanh(x)" in out  # Linear's, the Lambda's
    assert "the loss function, op by op" in out and "✗" not in out
