"""One simulated OPU across the processes of a torch.distributed job (`OPU(..., sharded=True)`).

Rank r of W owns the contiguous block `output_slice` of the n_out output columns (n * r // W to
n * (r + 1) // W) and its simulator generates only those rows of T, so the matrix memory per
rank scales as n_out / W. Every coefficient and every noise value is keyed by the global pixel
id (and frame index), never by the rank, so the union of the blocks is bit for bit the
one-process device.

What moves per call (docs/scaleout.md): the input batch (broadcast from rank 0) and, when asked,
the output (all-gather of the column blocks); in linear mode also the freshly measured anchor
intensity (n_out float32). Calibration frames are all-gathered (each rank renders its pixels,
every rank then runs the same calibration on the same full frames), so every rank computes the
same record. torch is imported only here, lazily, when a sharded OPU is made.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from firmware_iface.errors import ConfigurationError
from firmware_iface.frames import FrameBatch


def block_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """[start, stop) of rank's contiguous block when n items are split over world ranks."""
    return n * rank // world, n * (rank + 1) // world


class Shard:
    """This process's place in the job (rank, world size) and the collectives the OPU needs.

    Uses the default torch.distributed process group; initialises it from torchrun's
    environment (env://; gloo, or NCCL when CUDA is available and OPU_DIST_BACKEND=nccl) when
    the caller has not. NCCL collectives run on this rank's GPU (LOCAL_RANK).
    """

    def __init__(self) -> None:
        try:
            import torch
            import torch.distributed as dist
        except ImportError as exc:  # pragma: no cover - torch is a dependency
            raise ConfigurationError("sharded=True needs torch (torch.distributed)") from exc
        if not dist.is_available():
            raise ConfigurationError("this torch build has no torch.distributed")
        if not dist.is_initialized():
            if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
                raise ConfigurationError(
                    "sharded=True runs inside a torch.distributed job: launch with "
                    "`torchrun --nproc-per-node=N script.py` (or call "
                    "torch.distributed.init_process_group() before making the OPU)"
                )
            backend = os.environ.get("OPU_DIST_BACKEND", "gloo")
            dist.init_process_group(backend=backend)
        self._torch = torch
        self._dist = dist
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.backend = str(dist.get_backend())
        if self.backend == "nccl":  # collectives through this rank's GPU (untested here)
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")

    def bounds(self, n: int) -> tuple[int, int]:
        """This rank's [start, stop) of n columns."""
        return block_bounds(n, self.rank, self.world)

    # ---- collectives (bytes move exactly: values are bit for bit the senders') -----------
    def _tensor(self, a: np.ndarray) -> Any:
        return self._torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def broadcast_array(self, a: np.ndarray | None) -> np.ndarray:
        """Rank 0's array on every rank (shape and dtype travel with it)."""
        meta = [None if a is None else (a.dtype.str, a.shape)] if self.rank == 0 else [None]
        self._dist.broadcast_object_list(meta, src=0)
        if meta[0] is None:
            raise ConfigurationError("rank 0 has no input to broadcast")
        dtype, shape = np.dtype(meta[0][0]), tuple(meta[0][1])
        if self.rank == 0:
            buf = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
        else:
            buf = np.empty(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, np.uint8)
        t = self._tensor(buf)
        self._dist.broadcast(t, src=0)
        return t.cpu().numpy().view(dtype).reshape(shape)

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's Python object on every rank (small control decisions)."""
        box = [obj if self.rank == 0 else None]
        self._dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_columns(self, local: np.ndarray, n_total: int) -> np.ndarray:
        """Concatenate every rank's column block (rows, its columns) into (rows, n_total)."""
        local = np.ascontiguousarray(local)
        rows, item = local.shape[0], local.dtype.itemsize
        widths = [block_bounds(n_total, r, self.world) for r in range(self.world)]
        widths = [b - a for a, b in widths]
        if local.shape[1] != widths[self.rank]:
            raise ConfigurationError(
                f"rank {self.rank} holds {local.shape[1]} columns, expected {widths[self.rank]}"
            )
        wmax = max(widths)
        send = np.zeros((rows, wmax * item), np.uint8)
        send[:, : local.shape[1] * item] = local.view(np.uint8).reshape(rows, -1)
        parts = [self._torch.empty((rows, wmax * item), dtype=self._torch.uint8,
                                   device=self.device) for _ in range(self.world)]
        self._dist.all_gather(parts, self._tensor(send))
        out = np.concatenate(
            [p.cpu().numpy()[:, : w * item] for p, w in zip(parts, widths, strict=True)], axis=1
        )
        return np.ascontiguousarray(out).view(local.dtype).reshape(rows, n_total)

    def sum_int64(self, a: np.ndarray) -> np.ndarray:
        """Element-wise sum over ranks of an int64 array (exact)."""
        t = self._tensor(np.asarray(a, dtype=np.int64))
        self._dist.all_reduce(t)
        return t.cpu().numpy()

    def gather_rows(self, local: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """All ranks' row blocks concatenated in rank order, and each rank's row count."""
        local = np.ascontiguousarray(local)
        n = [self._torch.zeros(1, dtype=self._torch.int64, device=self.device)
             for _ in range(self.world)]
        self._dist.all_gather(n, self._tensor(np.array([local.shape[0]], np.int64)))
        counts = [int(c.item()) for c in n]
        rmax = max(counts)
        send = np.zeros((rmax,) + local.shape[1:], local.dtype)
        send[: local.shape[0]] = local
        flat = send.reshape(rmax, -1).view(np.uint8)
        parts = [self._torch.empty(flat.shape, dtype=self._torch.uint8, device=self.device)
                 for _ in range(self.world)]
        self._dist.all_gather(parts, self._tensor(flat))
        rows = [p.cpu().numpy().view(local.dtype).reshape((rmax,) + local.shape[1:])[:c]
                for p, c in zip(parts, counts, strict=True)]
        return np.concatenate(rows), counts


class ShardedSource:
    """A simulated frame source of which this rank renders only its block of output pixels.

    In the default (gathering) mode `acquire` returns the frames of every current output pixel,
    all-gathered from the ranks (for calibration, which needs statistics over the whole ROI).
    Inside `local()` it returns this rank's block only (for projection). Everything else is
    the bench's (clock, medium, ...).
    """

    def __init__(self, bench: Any, shard: Shard) -> None:
        self._bench = bench
        self._shard = shard
        self._local = False
        self.set_output_pixels(None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_bench":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._bench, name)

    @property
    def shard(self) -> Shard:
        """The job this source is split over."""
        return self._shard

    @property
    def pixel_ids(self) -> np.ndarray:
        """Global ids of the columns acquire() returns (all, or this rank's block in local())."""
        return self._bench.pixel_ids if self._local else self._all_ids

    def set_output_pixels(self, pixel_ids: np.ndarray | None) -> None:
        """Output pixels of the whole device; this rank renders its contiguous block of them."""
        ids = self._bench.roi.pixel_ids() if pixel_ids is None else np.asarray(pixel_ids)
        if ids.ndim != 1 or ids.size < self._shard.world:
            raise ConfigurationError(
                f"a device sharded over {self._shard.world} ranks needs at least that many "
                f"output pixels, got {ids.size}"
            )
        a, b = self._shard.bounds(ids.size)
        self._bench.set_output_pixels(ids[a:b])
        self._all_ids = ids.astype(np.int64)

    @contextlib.contextmanager
    def local(self) -> Iterator[None]:
        """acquire() returns only this rank's columns inside this block."""
        self._local = True
        try:
            yield
        finally:
            self._local = False

    def acquire(self, patterns: np.ndarray, exposure_us: float) -> FrameBatch:
        """Frames of the patterns: this rank's columns (in local()) or all of them."""
        batch = self._bench.acquire(patterns, exposure_us)
        if self._local:
            return batch
        frames = self._shard.gather_columns(batch.frames, self._all_ids.size)
        return FrameBatch(
            frames=frames,
            frame_ids=batch.frame_ids,
            timestamps_us=batch.timestamps_us,
            exposure_us=batch.exposure_us,
            pixel_ids=self._all_ids,
            saturated=self._shard.sum_int64(batch.saturated),
            reacquired=batch.reacquired,
            info=batch.info,
        )


def shard_source(source: Any, device: str) -> tuple[Shard, ShardedSource]:
    """Split a simulated source over the ranks of the current torch.distributed job."""
    if device != "sim":
        raise ConfigurationError(
            f"sharded=True splits a simulated device (device='sim'), not {device!r}: one camera "
            "cannot be read by several processes"
        )
    shard = Shard()
    return shard, ShardedSource(source, shard)


class DataParallelProjector:
    """A sharded OPU as the DFA projector of a data-parallel job (DistributedDataParallel).

    Every rank passes its own rows (its part of the global batch); project() gathers the rows
    of all ranks in rank order, projects them once on the sharded device (each rank computing
    its output columns) and returns this rank's rows. The device therefore sees exactly the
    batch one process would see with the ranks' batches concatenated in rank order, so its
    outputs, noise included, are bit for bit those of that one process.
    """

    def __init__(self, opu: Any) -> None:
        shard = getattr(opu, "_shard", None)
        if shard is None:
            raise ConfigurationError(
                "DataParallelProjector needs an OPU made with sharded=True"
            )
        self.opu = opu
        self._shard = shard
        self.n_in = opu.n_in
        self.n_out = opu.n_out
        self.seed = opu.seed

    def gather_errors(self, e: Any) -> tuple[Any, slice]:
        """Every rank's error rows (torch, float32) in rank order, and the slice that is this
        rank's. opu.dfa calls it so that the global batch is ternarised once, with the same
        rounding draws as one process on the concatenated batch (then `project_all`)."""
        import torch

        local = np.ascontiguousarray(e.detach().cpu().numpy(), dtype=np.float32)
        everything, counts = self._shard.gather_rows(local)
        r0 = sum(counts[: self._shard.rank])
        return torch.from_numpy(everything).to(e.device), slice(r0, r0 + local.shape[0])

    def project_all(self, x: Any, mode: str = "linear") -> Any:
        """The projection of rows that are already the global batch (every rank passes the
        same rows, e.g. from `gather_errors`): all of them, (rows, n_out) float32."""
        return self.opu.project(x, mode=mode)

    def project(self, x: Any, mode: str = "linear") -> Any:
        """This rank's rows of the projection of every rank's rows (rows, n_out) float32."""
        from .arrays import like_input, to_numpy

        xn = np.asarray(to_numpy(x))
        was_1d = xn.ndim == 1
        rows = xn.reshape(1, -1) if was_1d else xn
        everything, counts = self._shard.gather_rows(rows)
        y = self.opu.project(everything, mode=mode)
        r0 = sum(counts[: self._shard.rank])
        return like_input(np.ascontiguousarray(y[r0 : r0 + rows.shape[0]]), x, was_1d)
