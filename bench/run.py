"""knowit-app speed benchmark: ``python bench/run.py [--quick] [--only a,b,...]``.

Measures, in one invocation on one machine, and prints as a table (median, min, max, target):

  a  per-epoch training time, the app against ``floor.py`` (the plain eager loop), at batch
     64 and 256, interleaved in one process; the ratio app / floor.py  (target <= 1.0)
  b  one tutorial run (``knowit-app``, 5 epochs) end to end, its split into phases, and its
     peak RSS                                               (target <= 40 s)
  c  per-run overhead of a 9-run grid sweep of 1-epoch runs: (wall - sum of fit) / 9
                                                            (target <= 0.5 s)
  d  ``consolidate_sweep`` on a synthetic sweep of 1,000 runs  (target <= 1 s)
  e  ``knowit-app --help`` wall time                        (target <= 1.5 s)
  i  context: fresh-interpreter import times (python, knowit_app.app, torch, lightning)
  s  the README's demo sweep (10 runs x 5 epochs, default options) against ``floor.py``
     training the same 10 configurations one after another; start-up and a warm worker's
     run start to the first optimizer step; peak memory of all its processes
                                       (targets: ratio <= 0.6, 5 s, 0.3 s)

Writes ``results.md`` and ``results.json`` (``results-quick.*`` with ``--quick``) next to this
file, with the machine, the date and the exact command. Targets are benchmark goals, not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, Figure, load_average, log, machine_info  # noqa: E402

SECTIONS = ("e", "i", "d", "a", "b", "c", "s")  # run order: cheap and quick to fail first
TARGETS = {"a": 1.0, "b": 40.0, "c": 0.5, "d": 1.0, "e": 1.5}
DEFAULT_REPS = {"a": 5, "b": 3, "c": 3, "d": 7, "e": 7, "i": 5, "s": 1}
QUICK_REPS = {"a": 1, "b": 1, "c": 1, "d": 3, "e": 3, "i": 2, "s": 1}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--only", default=",".join(sorted(SECTIONS)),
                   help="comma-separated sections to run (a,b,c,d,e,i,s); default: all")
    p.add_argument("--reps", type=int, default=None,
                   help="repetitions of every section (default: a 5, b 3, c 3, d 7, e 7, i 5)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per run in (a); the first is a warm-up left out (default 3)")
    p.add_argument("--batch-sizes", default="64,256", help="batch sizes of (a) (default 64,256)")
    p.add_argument("--runs", type=int, default=1000, help="synthetic runs for (d) (default 1000)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (in process) and OMP_NUM_THREADS (children); "
                        "default: torch's own choice")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 1-3 repetitions, 2 epochs in (a); noisy figures")
    p.add_argument("--out", default=None,
                   help="results file stem (default bench/results, bench/results-quick)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def reps_for(args: argparse.Namespace, section: str) -> int:
    if args.reps is not None:
        return max(1, args.reps)
    return (QUICK_REPS if args.quick else DEFAULT_REPS)[section]


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.3f}"
    if unit == "MiB":
        return f"{value:.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def table_rows(figures: list[Figure]) -> list[tuple[str, ...]]:
    rows = [("figure", "unit", "median", "min", "max", "n", "target", "met")]
    for f in figures:
        met = {True: "yes", False: "NO", None: ""}[f.met]
        rows.append((f.label, f.unit, fmt(f.median, f.unit), fmt(f.min, f.unit),
                     fmt(f.max, f.unit), str(len(f.samples)),
                     f"<= {fmt(f.target, f.unit)}" if f.target is not None else "", met))
    return rows


def text_table(figures: list[Figure]) -> str:
    rows = table_rows(figures)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(figures: list[Figure], info: dict, command: str, quick: bool) -> str:
    rows = table_rows(figures)
    out = ["# knowit-app benchmark results", ""]
    if quick:
        out += ["**Smoke run (`--quick`)**: one to three repetitions; not for comparison.", ""]
    out += [f"- date: {info['date']}",
            f"- machine: {info['cpu_model']}, {info['cpus_usable']} usable of "
            f"{info['cpu_count']} CPUs, {info.get('memory_gib', '?')} GiB, {info['platform']}",
            f"- python {info['python']}, torch {info['torch']} ({info['torch_threads']} threads), "
            f"lightning {info['lightning']}, hydra-core {info['hydra-core']}, "
            f"omegaconf {info['omegaconf']}, wandb {info['wandb']}; "
            f"--threads {info['threads_option'] or 'not given (torch default)'}",
            f"- load average (1, 5, 15 min) at start {info['load_average_start']}, "
            f"at end {info.get('load_average_end')}",
            f"- command: `{command}` ({info['elapsed_s']:.0f} s)", "",
            "| " + " | ".join(rows[0]) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(rows[0]))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    notes = [f"- {f.label.strip()}: {f.note}" for f in figures if f.note]
    if notes:
        out += ["", "Notes:", "", *notes]
    out += ["", "Medians of the repetitions; (a)'s ratio is the median of per-pair ratios of "
            "interleaved app/floor.py runs. Raw samples and per-phase details are in the JSON file "
            "next to this one.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    command = "python bench/run.py" + ("".join(" " + shlex.quote(a) for a in sys.argv[1:])
                                       if argv is None else " " + shlex.join(argv))
    started = time.perf_counter()
    info = machine_info()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    # A kill (SIGTERM) unwinds like Ctrl-C, so the scratch directory is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="knowit-bench-"))
    log(f"scratch directory {work}; sections {','.join(s for s in SECTIONS if s in args.sections)}")
    figures: list[Figure] = []
    info["threads_option"] = args.threads
    try:
        if {"b", "c"} & set(args.sections):
            from processes import warm_cache

            log(f"data preparation warm-up (file cache): {warm_cache(work, args.threads):.1f} s")
        for section in SECTIONS:
            if section not in args.sections:
                continue
            reps = reps_for(args, section)
            log(f"section {section}: {reps} repetition(s)")
            if section == "a":
                import torch

                if args.threads:
                    torch.set_num_threads(args.threads)
                from epochs import bench_epochs

                sizes = [int(b) for b in args.batch_sizes.split(",")]
                epochs = args.epochs or (2 if args.quick else 3)
                figures += bench_epochs(sizes, epochs, reps, work, TARGETS["a"])
            elif section == "b":
                from processes import bench_tutorial

                figures += bench_tutorial(reps, work, args.threads, TARGETS["b"])
            elif section == "c":
                from processes import bench_sweep

                figures += bench_sweep(reps, work, args.threads, TARGETS["c"])
            elif section == "d":
                from consolidation import bench_consolidation

                figures += bench_consolidation(reps, work, args.runs, TARGETS["d"])
            elif section == "e":
                from processes import bench_help

                figures += bench_help(reps, work, args.threads, TARGETS["e"])
            elif section == "i":
                from processes import bench_imports

                figures += bench_imports(reps, work, args.threads)
            elif section == "s":
                from sweep_wall import bench_demo_sweep

                figures += bench_demo_sweep(reps, work, quick=args.quick)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    order = {s: n for n, s in enumerate("sabcdei")}
    figures.sort(key=lambda f: order.get(f.key[0], 99))  # stable: keeps each section's order
    info["load_average_end"] = load_average()
    info["elapsed_s"] = time.perf_counter() - started
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch_threads"] = None
    print(text_table(figures))
    stem = Path(args.out) if args.out else BENCH_DIR / ("results-quick" if args.quick
                                                        else "results")
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text(markdown(figures, info, command, args.quick))
    stem.with_suffix(".json").write_text(json.dumps(
        {"command": command, "quick": args.quick, "machine": info,
         "figures": [f.as_dict() for f in figures]}, indent=2, default=str) + "\n")
    log(f"wrote {stem.with_suffix('.md')} and {stem.with_suffix('.json')} "
        f"({info['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
