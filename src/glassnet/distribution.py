"""Data-parallel training on MPI, in the shape of Keras 3's ``keras.distribution``.

Each process (an MPI *rank*) holds the whole model and trains on its share of every batch; one
exchange per step sums the shares' gradients (from shared memory between the ranks of a machine,
by MPI's Allreduce between machines). It is the deck's gradient descent with the
sum over the batch split between machines: for a batch of B rows cut into parts of b_r rows,

    ∂C/∂w = (1/B)·Σ_rows ∂C_row/∂w = Σ_r (b_r/B)·∂C_r/∂w

where ∂C_r/∂w is what rank r's backward pass computes on its b_r rows (a mean over them). Every
rank then takes the same step from the same sum, so the weights stay the same everywhere.

    mpiexec -n 2 python -m mpi4py train.py      # train.py calls set_distribution(DataParallel())
    glassnet train --processes 2                 # the same, started for you

``batch_size`` is global: fit(batch_size=128) on 2 processes gives each 64 rows a step and takes
the same steps as one process with batch_size=128. What else fit does under a distribution:

- rank 0's weights, optimizer state and batch order are broadcast when training begins;
- the data is one shuffle, the same on every rank (rank 0's generator), each batch cut in order;
- every rank takes the same number of steps: a rank whose share of the last batch is empty sends
  zeros with weight 0, so nobody waits forever in the Allreduce;
- losses and metrics are summed as totals and counts over the ranks (not averages of averages),
  and every callback sees the same logs, so EarlyStopping and ReduceLROnPlateau decide alike;
  ``stop_training`` set on any rank stops every rank;
- non-trainable statistics (BatchNormalization's moving mean and variance) are averaged over the
  ranks at the end of each epoch;
- files (``save``, ModelCheckpoint, BackupAndRestore, CSVLogger, TensorBoard) and the progress
  bar come from rank 0 only; validation and ``evaluate`` are shared out like training.

mpi4py is imported only here, and only when a distribution is made: scripts that never mention
one run on one process without MPI installed. ``pip install "glassnet[mpi]"`` brings mpi4py and
MPICH (its ``mpiexec`` lands in the environment's ``bin``). Start with ``python -m mpi4py``: a
rank that raises then aborts the whole job instead of leaving the others waiting.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from glassnet import backend
from glassnet.backend import xp
from glassnet.metrics import MetricVariable

__all__ = [
    "DataParallel",
    "DeviceMesh",
    "distribution",
    "get_device_count",
    "initialize",
    "list_devices",
    "set_distribution",
]

INSTALL = 'pip install "glassnet[mpi]"'
SHARED_FROM = 1 << 16
"""Bytes of gradients from which the ranks of a machine add them from shared memory rather than
through MPI's Allreduce; below it the Allreduce's one call beats three barriers (two local
ranks: 16 KB 0.013 ms against 0.015; 66 KB 0.021 against 0.020; 1 MB 0.142 against 0.066)."""
_CURRENT: DataParallel | None = None


def _mpi():
    """mpi4py's MPI (initialising MPI on first import), or an error saying how to get it."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(
            f"Data-parallel training runs on MPI through mpi4py, which is not installed: {INSTALL}"
            " (mpi4py with MPICH), then start your script with "
            "mpiexec -n 2 python -m mpi4py your_script.py."
        ) from e
    return MPI


def launched() -> bool:
    """Whether this process was started by an MPI launcher (MPICH's hydra, Open MPI)."""
    return any(k in os.environ for k in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"))


def mpiexec() -> str:
    """The MPI launcher: the one beside this Python (the ``mpich`` wheel puts it in the
    environment's ``bin``), else the first on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise FileNotFoundError(
            f"No mpiexec found beside {sys.executable} or on PATH: {INSTALL} brings MPICH's."
        )
    return found


def launch_command(processes: int, argv: list[str]) -> list[str]:
    """The command that runs ``python argv…`` as ``processes`` ranks on this machine, through
    ``python -m mpi4py`` (a rank that raises then aborts the job instead of hanging it)."""
    return [mpiexec(), "-n", str(processes), sys.executable, "-m", "mpi4py", *argv]


def list_devices(device_type=None) -> list[str]:
    """One CPU per process of the job, as ``"cpu:<rank>"``: glassnet's devices are processes.
    Without MPI (or outside ``mpiexec``), ``["cpu:0"]``."""
    if device_type is not None and str(device_type).lower() != "cpu":
        raise ValueError(
            f"Received device_type={device_type!r}. glassnet computes on CPUs: use 'cpu' or None."
        )
    return [f"cpu:{i}" for i in range(get_device_count())]


def get_device_count(device_type=None) -> int:
    """How many processes the job has (1 without MPI)."""
    if device_type is not None and str(device_type).lower() != "cpu":
        return 0
    if _CURRENT is not None:
        return _CURRENT.num_processes
    if not launched():
        return 1
    return _mpi().COMM_WORLD.Get_size()


def initialize(job_addresses=None, num_processes=None, process_id=None) -> None:
    """Keras's multi-host start-up. Under MPI the launcher has done it (``mpiexec`` gives every
    process its rank), so this only checks that what you pass agrees with it."""
    if job_addresses is not None:
        raise ValueError(
            "glassnet's processes find each other through MPI: name the machines to mpiexec "
            "(-hosts / --host, see README, 'Training on many processes'), not job_addresses."
        )
    comm = _mpi().COMM_WORLD
    for name, given, actual in (
        ("num_processes", num_processes, comm.Get_size()),
        ("process_id", process_id, comm.Get_rank()),
    ):
        if given is not None and given != actual:
            raise ValueError(f"Received {name}={given}, but mpiexec started this one as {actual}.")


class DeviceMesh:
    """Keras's device mesh, one dimension: the processes of the job."""

    def __init__(self, shape, axis_names, devices=None):
        self.shape, self.axis_names = tuple(shape), list(axis_names)
        self.devices = list_devices() if devices is None else list(devices)
        if len(self.shape) != 1:
            raise ValueError(
                f"Received shape={self.shape}. glassnet's mesh has one dimension, the processes: "
                "data parallelism only."
            )


class DataParallel:
    """Data parallelism over the processes of an MPI job: every process holds the whole model
    and takes its share of each batch.

    Args:
        device_mesh: Keras's ``DeviceMesh`` (one dimension), or None.
        devices: Keras's list of devices, one per process (``list_devices()``), or None.
        auto_shard_dataset: True (the only choice here): fit cuts each global batch between
            the processes itself, so every process passes the same, whole data.
        comm: the MPI communicator to use (``MPI.COMM_WORLD`` by default).
    """

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset=True, comm=None):
        if device_mesh is not None and devices is not None:
            raise ValueError("Pass device_mesh or devices to DataParallel, not both.")
        if not auto_shard_dataset:
            raise NotImplementedError(
                "auto_shard_dataset=False is not supported by glassnet: pass every process the "
                "same, whole data and fit gives each its share of every batch."
            )
        self._MPI = _mpi()
        self.comm = self._MPI.COMM_WORLD if comm is None else comm
        self.process_id, self.num_processes = self.comm.Get_rank(), self.comm.Get_size()
        wanted = (device_mesh.devices if device_mesh is not None else devices) or []
        if wanted and len(wanted) != self.num_processes:
            raise ValueError(
                f"Received {len(wanted)} devices, but the job has {self.num_processes} processes: "
                f"glassnet trains one process per device (mpiexec -n {len(wanted)} ...)."
            )
        self.device_mesh = device_mesh or DeviceMesh(
            (self.num_processes,), ["batch"], [f"cpu:{i}" for i in range(self.num_processes)]
        )
        self.auto_shard_dataset = True
        # The ranks on this machine, and the ranks in the same place on every machine.
        per_node = os.environ.get("GLASSNET_RANKS_PER_NODE")  # tests: pretend to be machines
        self.node = (
            self.comm.Split(self.process_id // int(per_node), self.process_id)
            if per_node
            else self.comm.Split_type(self._MPI.COMM_TYPE_SHARED, self.process_id)
        )
        self.across = self.comm.Split(self.node.Get_rank(), self.process_id)
        self._shared: dict[int, tuple] = {}  # id(gradient buffer) -> (window, every rank's view)
        self._share_the_cores()
        self._separated: set[int] = set()  # models whose dropout streams were told apart

    def _share_the_cores(self) -> None:
        """The processes on one machine divide its cores: each gets cores ÷ processes threads
        for BLAS and for glassnet's kernels (unless GLASSNET_NUM_THREADS says otherwise), so two
        ranks on two cores do not fight over them."""
        on_this_machine = self.node.Get_size()
        if on_this_machine == 1 or os.environ.get("GLASSNET_NUM_THREADS"):
            return
        threads = max(1, len(os.sched_getaffinity(0)) // on_this_machine)
        backend.limit_threads(threads)

    @property
    def batch_dim_name(self) -> str:
        return self.device_mesh.axis_names[0]

    @property
    def data_shard_id(self) -> int:
        return self.process_id

    def __repr__(self) -> str:
        return f"<DataParallel process {self.process_id} of {self.num_processes}>"

    # ---- the collectives: every rank calls each of them, in the same order -------------------

    def sum_(self, array) -> None:
        """array ← Σ over the ranks of array, in place (one Allreduce, no copy, no pickle)."""
        self.comm.Allreduce(self._MPI.IN_PLACE, array, op=self._MPI.SUM)

    def broadcast_(self, array) -> None:
        """array ← rank 0's array, in place."""
        self.comm.Bcast(array, root=0)

    def broadcast(self, value):
        """Rank 0's value (a small Python object) on every rank."""
        return self.comm.bcast(value, root=0)

    def gather(self, value) -> list:
        """Every rank's value (a small Python object), in rank order, on every rank."""
        return self.comm.allgather(value)

    def any(self, flag) -> bool:
        """True on every rank if it is true on any."""
        return bool(self.comm.allreduce(bool(flag), op=self._MPI.LOR))

    def barrier(self) -> None:
        self.comm.Barrier()

    # ---- what fit asks of it --------------------------------------------------------------------

    def share(self, rows: int) -> slice:
        """This rank's rows of a batch of ``rows``: the batch cut in order into nearly equal parts
        (2 ranks, 129 rows: 0–63 and 64–128). A part may be empty (1 row, 2 ranks: rank 0's)."""
        r, n = self.process_id, self.num_processes
        return slice(rows * r // n, rows * (r + 1) // n)

    def separate_streams(self, model) -> None:
        """Give each rank its own dropout masks: rank r's generators jump r·2¹²⁷ draws ahead (once
        per model), so a seed set everywhere still makes different masks on each share."""
        if id(model) in self._separated:
            return
        self._separated.add(id(model))
        for name, rng in model.random_generators().items():
            if name != "model":  # the batch order stays one shuffle, the same everywhere
                for _ in range(self.process_id):
                    rng.bit_generator.state = rng.bit_generator.jumped().state

    def synchronize(self, model) -> None:
        """Rank 0's weights, optimizer state, batch order and resume point on every rank (when
        training begins, after a backup may have been restored on rank 0)."""
        for parameters, _ in model.pack_parameters():
            self.broadcast_(parameters)
        optimizer = model.optimizer
        for state in optimizer.variables():
            self.broadcast_(state)
        optimizer.iterations = self.broadcast(optimizer.iterations)
        order = model.random_generators()["model"]
        order.bit_generator.state = self.broadcast(order.bit_generator.state)
        model.resume_from_epoch = self.broadcast(model.resume_from_epoch)

    def prepare(self, model) -> None:
        """Put the model's gradient buffers in memory the ranks of one machine share (an MPI-3
        shared window), when they are not there yet. Collective: fit calls it on every rank."""
        buffers = model.pack_parameters()
        if self.node.Get_size() > 1 and not all(self.shares(g) for _, g in buffers):
            model.pack_parameters(gradients=self.shared_zeros)

    def shared_zeros(self, n: int, dtype) -> xp.ndarray:
        """n zeros of ``dtype`` in a shared window that every rank of this machine can read, for
        ``sum_shared_``. Collective over the machine's ranks."""
        dtype = xp.dtype(dtype)
        window = self._MPI.Win.Allocate_shared(n * dtype.itemsize, dtype.itemsize, comm=self.node)
        peers = []
        for k in range(self.node.Get_size()):
            memory, _ = window.Shared_query(k)
            peers.append(xp.frombuffer(memory, dtype=dtype, count=n))
        mine = peers[self.node.Get_rank()]
        mine.fill(0)
        self._shared[id(mine)] = (window, peers)
        return mine

    def shares(self, array) -> bool:
        """Whether ``array`` lies in this machine's shared memory (made by ``shared_zeros``)."""
        return id(array) in self._shared

    def _cuts(self, n: int) -> list[slice]:
        ranks = self.node.Get_size()
        return [slice(n * k // ranks, n * (k + 1) // ranks) for k in range(ranks)]

    def sum_gradients(self, model) -> None:
        """∂C/∂w ← Σ_r (b_r/B)·∂C_r/∂w over every rank: each rank's backward pass has already
        weighted its gradients by its share of the batch's rows (b_r/B, applied to the output's
        ∂C/∂z: ``Model.backpropagate``'s ``share``).

        Within one machine the ranks add straight from each other's buffers (``prepare``): rank
        l sums part l of every rank's gradients and writes the sum into every rank's part l,
        with no message cells between them (4.2 MB, two ranks: 0.42 ms against 0.97 for MPI's
        Allreduce, measured). Across machines, one in-place Allreduce of each part among the
        ranks holding it (a hierarchical allreduce). Every rank ends with the very same bits.
        """
        for _, gradients in model.pack_parameters():
            if self.shares(gradients) and gradients.nbytes >= SHARED_FROM:
                self.sum_shared_(gradients)
            else:
                self.sum_(gradients)

    def sum_shared_(self, gradients) -> None:
        """gradients ← Σ over the ranks, in place, for a buffer from ``shared_zeros``.

        Rank l owns part l: it adds part l of every rank's buffer into its own, then writes
        that sum into part l of every other rank's buffer. No rank reads or writes another's
        part, so two barriers are enough: one before (every backward pass is done) and one
        after (every part is everywhere, and nobody touches a buffer its next backward writes).
        """
        _, peers = self._shared[id(gradients)]
        here = self.node.Get_rank()
        part = self._cuts(len(gradients))[here]
        mine = gradients[part]
        self.node.Barrier()  # every rank's gradients are complete
        others = [peer[part] for k, peer in enumerate(peers) if k != here]
        xp.add(mine, others[0], out=mine)
        for other in others[1:]:
            mine += other
        if self.across.Get_size() > 1:  # the same part on the other machines
            self.across.Allreduce(self._MPI.IN_PLACE, mine, op=self._MPI.SUM)
        for other in others:
            other[...] = mine
        self.node.Barrier()  # every part is summed, on every rank

    def average_statistics(self, model) -> None:
        """Non-trainable float parameters (moving means and variances) ← their mean over ranks."""
        for layer in model.leaf_layers():
            for owner in layer.owners_of_arrays():
                for name in owner.non_trainable:
                    value = owner.params[name]
                    if value.dtype.kind == "f":
                        self.sum_(value)
                        value /= self.num_processes

    def merged(self, metrics: list) -> list:
        """Copies of ``metrics`` holding the sum of every rank's state (totals and counts, true
        and false positives, …), so their results are those of the whole data."""
        states = [(m, _state_names(m)) for m in metrics]
        values = [xp.asarray(_value(getattr(m, k)), dtype=xp.float64).reshape(-1)
                  for m, names in states for k in names]  # fmt: skip
        if not values:
            return list(metrics)
        flat = xp.concatenate(values)
        self.sum_(flat)
        out, start = [], 0
        for m, names in states:
            copy = m.__class__.__new__(m.__class__)
            copy.__dict__.update(m.__dict__)
            for k in names:
                old = getattr(m, k)
                size = xp.size(_value(old))
                part = flat[start : start + size]
                start += size
                if isinstance(old, MetricVariable):
                    value = part.reshape(old.value.shape).astype(old.value.dtype)
                    setattr(copy, k, MetricVariable(value, old.name))
                elif isinstance(old, (int, float)):
                    setattr(copy, k, float(part[0]))
                else:
                    setattr(copy, k, part.reshape(xp.shape(old)))
            out.append(copy)
        return out


def _value(state):
    return state.value if isinstance(state, MetricVariable) else state


def _state_names(metric) -> list[str]:
    """A metric's running sums: its class's STATE, and any variable made with add_variable."""
    names = list(getattr(metric, "STATE", ()))
    return names + [k for k, v in vars(metric).items()
                    if isinstance(v, MetricVariable) and k not in names]  # fmt: skip


def set_distribution(value) -> None:
    """Make ``value`` (a ``DataParallel``, or None for one process) the distribution ``fit``,
    ``evaluate`` and the files follow from now on."""
    global _CURRENT
    if value is not None and not isinstance(value, DataParallel):
        raise TypeError(
            f"Received {value!r}. Expected a glassnet.distribution.DataParallel, or None."
        )
    _CURRENT = value
    if value is None:
        backend.set_process(0, 1)
    else:
        backend.set_process(value.process_id, value.num_processes)


def distribution() -> DataParallel | None:
    """The distribution set with ``set_distribution`` (None: one process)."""
    return _CURRENT


def active() -> DataParallel | None:
    """The distribution when it spans more than one process; else None (nothing to share)."""
    return _CURRENT if _CURRENT is not None and _CURRENT.num_processes > 1 else None
