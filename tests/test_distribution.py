"""Data-parallel training: the flat parameter buffer, and fit on two MPI ranks against one
process (tests/distributed_fits.py is what each rank runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import glassnet
from glassnet import distribution, layers
from tests import distributed_fits

SCRIPT = Path(__file__).with_name("distributed_fits.py")
JOB_TIMEOUT = 240  # seconds: a job that hangs fails the test instead of holding CI


def _has_mpi() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    try:
        distribution.mpiexec()
    except FileNotFoundError:
        return False
    return True


needs_mpi = pytest.mark.skipif(
    not _has_mpi(), reason='needs mpi4py and mpiexec: pip install -e ".[test]" brings both'
)


def run_job(out: Path, *cases: str, processes: int = 2, env=None) -> subprocess.CompletedProcess:
    command = distribution.launch_command(processes, [str(SCRIPT), str(out), *cases])
    return subprocess.run(command, capture_output=True, text=True, timeout=JOB_TIMEOUT,
                          cwd=SCRIPT.parent.parent, env=env)  # fmt: skip


def weights_of(out: Path, case: str, rank: int) -> list[np.ndarray]:
    stored = np.load(out / f"{case}.rank{rank}.npz")
    return [stored[f"arr_{i}"] for i in range(len(stored.files))]


# ---- one buffer for the parameters, one for the gradients ----------------------------------------


def _mixed_model():
    glassnet.utils.set_random_seed(3)
    x = layers.Input((5, 4))
    h = layers.Bidirectional(layers.LSTM(3, return_sequences=True))(x)
    h = layers.Conv1D(2, 2)(h)
    h = layers.BatchNormalization()(h)
    h = layers.Flatten()(h)
    model = glassnet.Model(x, layers.Dense(2, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_every_parameter_and_gradient_is_a_view_of_the_model_buffers():
    model = _mixed_model()
    before = model.get_weights()
    ((parameters, gradients),) = model.pack_parameters()
    assert parameters.size == gradients.size == model.count_params()
    for leaf in model.leaf_layers():  # the wrapper's arrays and its inner layers' are the same
        for name, p in leaf.params.items():
            assert p.base is parameters and leaf.grads[name].base is gradients, (leaf.name, name)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    x = np.random.default_rng(0).normal(size=(16, 5, 4)).astype("float32")
    y = np.arange(16) % 2
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.array_equal(np.concatenate([w.reshape(-1) for w in model.get_weights()]).size,
                          parameters.size)  # fmt: skip
    for p, g in model.trainable_pairs():  # the optimizer updated the buffer in place
        assert p.base is parameters and g.base is gradients
    assert not np.array_equal(before[0], model.get_weights()[0])


def test_a_layer_shared_by_two_models_trains_in_either():
    glassnet.utils.set_random_seed(0)
    shared = layers.Dense(3)
    a = glassnet.Sequential([layers.Input((4,)), shared, layers.Dense(1)])
    b = glassnet.Sequential([layers.Input((4,)), shared, layers.Dense(2)])
    for model in (a, b):
        model.compile(glassnet.optimizers.SGD(0.1), "mse")
    x, rng = np.ones((8, 4), "float32"), np.random.default_rng(0)
    for model, width in ((a, 1), (b, 2), (a, 1)):  # each fit packs the shared layer anew
        before = shared.get_weights()[0].copy()
        model.fit(x, rng.normal(size=(8, width)), epochs=1, verbose=0)
        assert not np.array_equal(before, shared.get_weights()[0])
        assert shared.params["W"].base is model.pack_parameters()[0][0]


def test_one_process_scripts_never_import_mpi():
    code = (
        "import sys, numpy as np, glassnet; from glassnet import layers; "
        "m = glassnet.Sequential([layers.Input((3,)), layers.Dense(1)]); m.compile('sgd', 'mse');"
        "m.fit(np.ones((4, 3)), np.ones((4, 1)), verbose=0); "
        "print(glassnet.distribution.list_devices(), 'mpi4py' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["['cpu:0']", "False"], done.stderr


def test_without_mpi4py_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r'pip install "glassnet\[mpi\]".*mpiexec -n 2'):
        distribution.DataParallel()


@needs_mpi
def test_the_distribution_api_says_what_it_cannot_do():
    with pytest.raises(ValueError, match="glassnet computes on CPUs"):
        distribution.list_devices("gpu")
    with pytest.raises(ValueError, match=r"3 devices, but the job has 1 processes"):
        distribution.DataParallel(devices=["cpu:0", "cpu:1", "cpu:2"])
    with pytest.raises(NotImplementedError, match="same, whole data"):
        distribution.DataParallel(auto_shard_dataset=False)
    with pytest.raises(TypeError, match="Expected a glassnet.distribution.DataParallel"):
        distribution.set_distribution("data_parallel")
    with pytest.raises(ValueError, match="not job_addresses"):
        distribution.initialize(job_addresses="10.0.0.1,10.0.0.2")


@needs_mpi
def test_a_one_process_distribution_trains_as_no_distribution():
    plain, _ = distributed_fits.fit("mlp", Path("."))
    distribution.set_distribution(distribution.DataParallel())
    try:
        assert distribution.list_devices() == ["cpu:0"]
        shared, _ = distributed_fits.fit("mlp", Path("."))
    finally:
        distribution.set_distribution(None)
    assert all(np.array_equal(a, b) for a, b in zip(plain.get_weights(), shared.get_weights()))


# ---- two ranks against one process ---------------------------------------------------------------

CASES = ("mlp", "cnn", "lstm", "ragged", "weights", "added", "validation", "batches", "files",
         "trace")  # fmt: skip


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Every case fitted on two ranks, in one job."""
    if not _has_mpi():
        pytest.skip('needs mpi4py and mpiexec: pip install -e ".[test]" brings both')
    out = tmp_path_factory.mktemp("two_ranks")
    done = run_job(out, *CASES, "--shared-from", "0")  # every buffer summed from shared memory
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.parametrize("case", CASES[:-2])
def test_two_ranks_end_where_one_process_does(two_ranks, case, tmp_path):
    model, history = distributed_fits.fit(case, tmp_path)
    rank0, rank1 = weights_of(two_ranks, case, 0), weights_of(two_ranks, case, 1)
    for a, b in zip(rank0, rank1):  # the same sum of gradients, the same step, on both
        assert np.array_equal(a, b)
    for rank in (0, 1):  # the gradients stayed in the memory both ranks read
        assert (two_ranks / f"{case}.rank{rank}.shared").read_text() == "True"
    for one, two in zip(model.get_weights(), rank0):  # sums in another order: rounding only
        np.testing.assert_allclose(two, one, rtol=0, atol=1e-5)
    for rank in (0, 1):  # every rank saw the logs of the whole batch, not of its share
        logs = json.loads((two_ranks / f"{case}.rank{rank}.json").read_text())
        assert logs.keys() == history.history.keys()
        for key, values in history.history.items():
            np.testing.assert_allclose(logs[key], values, rtol=1e-5, err_msg=key)
    if case == "validation":  # EarlyStopping stopped both ranks at the same epoch
        assert len(history.history["loss"]) < 6


@needs_mpi
@pytest.mark.parametrize(
    ("processes", "per_node", "shared_from"),
    [(4, "2", "0"), (4, "2", None), (3, None, "0")],
    ids=["two machines of two ranks", "the same, small buffers by Allreduce", "three ranks"],
)
def test_more_ranks_end_where_one_process_does(tmp_path, processes, per_node, shared_from):
    """The many-machine path on one (GLASSNET_RANKS_PER_NODE=2): ranks 0-1 and 2-3 each share
    a "machine" (their gradient buffers in shared memory), and the two machines' parts meet in
    an Allreduce; and three ranks on one machine, each summing a third of every buffer."""
    env = {**os.environ, **({"GLASSNET_RANKS_PER_NODE": per_node} if per_node else {})}
    options = ["--shared-from", shared_from] if shared_from else []
    done = run_job(tmp_path, "mlp", "ragged", *options, processes=processes, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    for case in ("mlp", "ragged"):  # ragged: the last batch's one row is the last rank's alone
        model, _ = distributed_fits.fit(case, tmp_path)
        ranks = [weights_of(tmp_path, case, r) for r in range(processes)]
        for other in ranks[1:]:
            assert all(np.array_equal(a, b) for a, b in zip(ranks[0], other))
        for one, four in zip(model.get_weights(), ranks[0]):
            np.testing.assert_allclose(four, one, rtol=0, atol=1e-5)


def test_only_rank_0_writes_files(two_ranks):
    folder = two_ranks / "files"
    lines = (folder / "log.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,") and len(lines) == 1 + 3  # one header, one row an epoch
    for part in ("train",):
        assert len(list((folder / "tb" / part).iterdir())) == 1  # one event file, rank 0's
    for name in ("best.keras", "final.keras"):
        reloaded = glassnet.models.load_model(folder / name)
        assert reloaded.count_params() > 0
    final = glassnet.models.load_model(folder / "final.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(final, weights_of(two_ranks, "files", 1)))
    metadata = json.loads((folder / "backup" / "training_metadata.json").read_text())
    assert len(metadata["generators_per_process"]) == 2


def test_the_glass_box_shows_a_split_step_process_by_process(two_ranks):
    split = json.loads((two_ranks / "trace.json").read_text())["split"]
    assert split["rows"] == [3, 4]  # 7 samples: rank 0 takes 3, rank 1 takes 4
    weighted = sum(r / 7 * g for r, g in zip(split["rows"], split["gradients"]))
    assert split["average"] == pytest.approx(weighted, rel=1e-12)
    assert split["average"] == pytest.approx(split["whole"], rel=1e-5)  # the one-process step
    assert split["gradients"][0] != pytest.approx(split["gradients"][1])  # two different parts
    text = (two_ranks / "trace.txt").read_text()
    assert "SPLIT OVER 2 PROCESSES" in text and "process 1 (4 of 7 rows)" in text
    assert "∂C/∂w = Σ (rows/B)·∂C/∂w = 3/7·" in text
    chinese = (two_ranks / "trace.zh-TW.txt").read_text()
    assert "Allreduce" in chinese and "process 1" not in chinese


def test_a_rank_that_raises_ends_the_job_with_its_error(tmp_path):
    done = run_job(tmp_path, "raise")
    assert done.returncode != 0
    assert "rank 1 gives up on purpose" in done.stderr


def test_a_rank_that_is_killed_ends_the_job(tmp_path):
    done = run_job(tmp_path, "kill")
    assert done.returncode != 0
    assert not list(tmp_path.glob("kill.rank*.npz"))  # nobody finished as if nothing happened


def test_backup_and_restore_resumes_a_killed_two_rank_run(tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    whole.mkdir(), broken.mkdir()
    assert run_job(whole, "backup").returncode == 0
    killed = run_job(broken, "backup", "--kill-at", "2")  # after the backup of epoch 2 of 4
    assert killed.returncode != 0
    assert json.loads((broken / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    resumed = run_job(broken, "backup")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for rank in (0, 1):  # dropout included: each rank's own masks were restored too
        for a, b in zip(weights_of(whole, "backup", rank), weights_of(broken, "backup", rank)):
            assert np.array_equal(a, b)
    assert not (broken / "backup").exists()  # deleted at the end, by rank 0


def test_glassnet_train_processes_starts_the_ranks_and_speaks_once(tmp_path):
    if not _has_mpi():
        pytest.skip('needs mpi4py and mpiexec: pip install -e ".[test]" brings both')
    done = subprocess.run(
        [sys.executable, "-m", "glassnet.cli", "train", "--dataset", "digits", "--epochs", "2",
         "--processes", "2", "--seed", "0", "--verbose", "2", "-o", "two.keras"],
        capture_output=True, text=True, timeout=JOB_TIMEOUT, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Starting 2 processes, each with" in done.stdout  # and how many cores each gets
    assert done.stdout.count("Saved the model to two.keras") == 1  # rank 0 speaks, alone
    assert done.stdout.count("Epoch 2/2") == 1
    assert glassnet.models.load_model(tmp_path / "two.keras").count_params() > 0


def test_glassnet_train_processes_without_mpiexec_says_what_to_install(monkeypatch, capsys):
    from glassnet import cli

    def missing():
        raise FileNotFoundError('No mpiexec found: pip install "glassnet[mpi]" brings MPICH\'s.')

    monkeypatch.setattr(distribution, "mpiexec", missing)
    monkeypatch.delenv("PMI_RANK", raising=False)
    monkeypatch.delenv("PMI_SIZE", raising=False)
    assert cli.main(["train", "--processes", "2", "--dataset", "digits"]) == 1
    assert 'pip install "glassnet[mpi]"' in capsys.readouterr().err
