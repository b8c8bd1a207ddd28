#!/usr/bin/python3
"""stats.h5 read while it is being written (SWMR), then by the HDF5 tools.

Runs tests/statsfile_writer (the library's gg_statsfile_* in a small
program that appends and flushes a few rows every 0.2 s for 3 s), opens the
file with h5py in SWMR mode while the writer still has it open, refreshes
the datasets and checks that the row count grows and every row read holds
the writer's values (statsfile_writer.c documents the formulas). After the
writer has closed the file: the whole layout with plain h5py, then h5ls and
h5dump (hdf5-tools) read it too.

    statsfile_read_test.py --writer build/tests/statsfile_writer

Prints one line per check and "N passed, N failed"; exit status 1 if any
check failed.
"""
import argparse
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

L = 4
HIST_BINS, HIST_LO = 64, -48
LAYER_STATS = ["grad_norm", "grad_max_abs", "weight_norm", "update_ratio", "saturation"]
ROW_SETS = ["step", "loss", "lr", "grad_norm", "grad_norm_clipped", "clip_coef",
            "clipped_fraction", "nonfinite"] + ["layers/" + s for s in LAYER_STATS]


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok    {what}")
        else:
            self.failed += 1
            print(f"FAIL  {what}" + (f": {detail}" if detail else ""))
        return ok


def expected_column(name, s):
    """The writer's value of column `name` at steps s (int64 array)."""
    d = s.astype(np.float64)
    gn = 0.5 * d
    if name == "step":
        return s
    if name == "loss":
        return (1000.0 / d).astype(np.float32)
    if name == "lr":
        return (0.001 * d).astype(np.float32)
    if name == "grad_norm":
        return gn.astype(np.float32)
    if name == "grad_norm_clipped":
        return np.minimum(gn, 10.0).astype(np.float32)
    if name == "clip_coef":
        return np.minimum(10.0 / gn, 1.0).astype(np.float32)
    if name == "clipped_fraction":
        return ((s % 10) / 10.0).astype(np.float32)
    if name == "nonfinite":
        return (s % 7 == 0).astype(np.uint8)
    k = LAYER_STATS.index(name.split("/")[1])
    return (d[:, None] + 0.25 * np.arange(L)[None, :] + k).astype(np.float32)


def expected_hist(hs):
    l = np.arange(L)[None, :, None]
    b = np.arange(HIST_BINS)[None, None, :]
    return ((hs[:, None, None] + l + b) % 5).astype(np.uint32)


def rows_valid(f, refresh=True):
    """Problems with what a reader sees now: each dataset by its own length,
    since the writer may append between two refreshes.

    HDF5 1.10.8 returns wrong data after H5Drefresh (Dataset.refresh) when a
    second handle to the same dataset is open: refresh through the only one."""
    problems = []
    for name in ROW_SETS:
        ds = f[name]
        if refresh:
            ds.refresh()
        got = ds[()]
        del ds
        want = expected_column(name, np.arange(1, len(got) + 1, dtype=np.int64))
        if got.shape != want.shape or not np.array_equal(got, want):
            problems.append(f"/{name} ({len(got)} rows) differs from the writer's values")
    if refresh:
        f["hist_step"].refresh()
        f["layers/grad_hist"].refresh()
    hs = f["hist_step"][()]
    gh = f["layers/grad_hist"][()]
    want_hs = np.array([t for t in range(1, 10**6) if t == 1 or t % 10 == 0][:len(hs)], np.int64)
    if not np.array_equal(hs, want_hs):
        problems.append(f"/hist_step {hs[:5]}... differs")
    n = min(len(hs), gh.shape[0])
    if gh.shape[1:] != (L, HIST_BINS) or not np.array_equal(gh[:n], expected_hist(hs[:n])):
        problems.append(f"/layers/grad_hist {gh.shape} differs")
    return problems


def read_line(proc, timeout):
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if r else None


def run_tool(args):
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr
    except OSError as e:
        return -1, str(e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writer", required=True, help="the statsfile_writer program")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args()
    c = Checks()
    tmp = tempfile.mkdtemp(prefix="gg_statsfile_swmr_")
    path = os.path.join(tmp, "stats.h5")
    try:
        proc = subprocess.Popen([args.writer, path, str(args.seconds), "0.2", "5"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = read_line(proc, 30)
        if not c.check(line == "ready", "writer started and flushed its first rows",
                       f"got {line!r}"):
            proc.kill()
            proc.wait()
            print(proc.stderr.read())
            print(f"{c.passed} passed, {c.failed} failed")
            return 1

        # --- while the writer runs ---
        seen, problems, reads = [], [], 0
        f = h5py.File(path, "r", libver="latest", swmr=True)
        c.check(f.swmr_mode, "h5py opened the file in SWMR mode while the writer has it open")
        while True:
            running = proc.poll() is None
            f["step"].refresh()
            seen.append(f["step"].shape[0])
            problems += rows_valid(f)
            reads += 1
            if not running:
                break
            time.sleep(0.15)
        f.close()
        out, err = proc.communicate(timeout=30)
        c.check(proc.returncode == 0, "writer exited 0", err.strip())
        done = [l for l in out.split("\n") if l.startswith("done ")]
        total_rows, total_hists = (int(v) for v in done[0].split()[1:3]) if done else (-1, -1)
        c.check(total_rows > 0, f"writer wrote {total_rows} rows, {total_hists} histograms")
        c.check(all(a <= b for a, b in zip(seen, seen[1:])), "row count never went down",
                f"{seen}")
        growth = len(set(seen))
        c.check(growth >= 4, f"reader saw the file grow while open ({growth} distinct row "
                f"counts over {reads} reads: {seen[0]} .. {seen[-1]})", f"{seen}")
        c.check(not problems, "every row read during the run holds the writer's values",
                "; ".join(sorted(set(problems))[:5]))

        # --- the finished file, plain h5py ---
        with h5py.File(path, "r") as g:
            c.check(g.attrs.get("format") == "gradguard.stats", "format = gradguard.stats",
                    repr(g.attrs.get("format")))
            c.check(int(g.attrs.get("format_version", -1)) == 1, "format_version = 1")
            names = [str(x) for x in g.attrs.get("layer_names", [])]
            c.check(names == [f"layer_{l:02d}" for l in range(L)], "layer_names as written",
                    repr(names))
            c.check(g["step"].shape == (total_rows,) and g["hist_step"].shape == (total_hists,),
                    "final shapes match the writer's counts",
                    f"{g['step'].shape} {g['hist_step'].shape}")
            types = {"step": np.int64, "hist_step": np.int64, "nonfinite": np.uint8,
                     "layers/grad_hist": np.uint32}
            bad = []
            for name in ROW_SETS + ["hist_step", "layers/grad_hist"]:
                ds = g[name]
                if ds.dtype != types.get(name, np.float32):
                    bad.append(f"{name} dtype {ds.dtype}")
                if ds.maxshape[0] is not None or ds.chunks is None:
                    bad.append(f"{name} not chunked/unlimited")
                if ds.compression != "gzip" or not ds.shuffle:
                    bad.append(f"{name} not shuffle+deflate")
                if not ds.attrs.get("units") or not ds.attrs.get("description"):
                    bad.append(f"{name} lacks units/description")
                del ds
            c.check(not bad, "every dataset: type, chunked, unlimited, shuffle+deflate, "
                    "units/description", "; ".join(bad))
            edges = g["layers/grad_hist"].attrs.get("bin_edges")
            c.check(edges is not None and np.array_equal(
                edges, np.arange(HIST_LO, HIST_LO + HIST_BINS + 1)), "bin_edges = -48..16")
            final = rows_valid(g, refresh=False)
            c.check(not final, "final contents hold the writer's values", "; ".join(final[:5]))

        # --- the HDF5 tools ---
        for tool in ("h5ls", "h5dump"):
            if not shutil.which(tool):
                print(f"skip  {tool} not installed (hdf5-tools)")
        if shutil.which("h5ls"):
            rc, out = run_tool(["h5ls", "-r", path])
            c.check(rc == 0 and "/layers/grad_hist" in out and
                    f"Dataset {{{total_rows}/Inf}}" in out, "h5ls -r reads the file",
                    out[-300:])
        if shutil.which("h5dump"):
            rc, out = run_tool(["h5dump", "-A", path])
            c.check(rc == 0 and '"gradguard.stats"' in out and "bin_edges" in out,
                    "h5dump -A reads the header and attributes", out[-300:])
            # the last step alone, as raw data (-y -o: values only, to a file)
            raw = os.path.join(tmp, "last_step.txt")
            rc, out = run_tool(["h5dump", "-d", "/step", "-s", str(total_rows - 1), "-c", "1",
                                "-y", "-o", raw, path])
            got = open(raw).read().split() if rc == 0 and os.path.exists(raw) else []
            c.check(got == [str(total_rows)], "h5dump reads the last step",
                    f"rc {rc}, got {got}, {out[-200:]}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
