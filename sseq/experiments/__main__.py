"""``python -m sseq.experiments NAME [--quick] [--seeds 0 1 2] [--jobs 2] [--prefix]``."""

from __future__ import annotations

import argparse
import json
import sys
import time

from sseq import experiments


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sseq.experiments",
                                     description="Run one of the book's long experiments.")
    parser.add_argument("name", nargs="?", help="the experiment (see --list)")
    parser.add_argument("--list", action="store_true", help="list the experiments")
    parser.add_argument("--quick", action="store_true",
                        help="a small version, to try things; saves nothing")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes, one thread each (results do not change)")
    parser.add_argument("--prefix", action="store_true",
                        help="re-run the first steps of the first stored run and compare")
    args = parser.parse_args(argv)
    if args.list or args.name is None:
        for name, module in experiments.EXPERIMENTS.items():
            print(f"{name}: {__import__(module, fromlist=['_']).DESCRIPTION}")
        return 0
    if args.name not in experiments.EXPERIMENTS:
        parser.error(f"unknown experiment {args.name!r}; choose from "
                     f"{sorted(experiments.EXPERIMENTS)}")
    start = time.perf_counter()
    if args.prefix:
        out = experiments.prefix(args.name)
        same = out["stored"] == out["rerun"]
        print(json.dumps(out, indent=1))
        print(f"the re-run {'reproduces' if same else 'DIFFERS FROM'} the stored log")
    else:
        results = experiments.run(args.name, quick=args.quick, seeds=args.seeds,
                                  jobs=args.jobs)
        print(json.dumps(results["summary"], indent=1))
        if not args.quick:
            print(f"wrote {experiments.results_path(args.name)}")
        print(f"{results['cpu_seconds']:.0f} s of CPU time in {args.jobs} process(es)")
    print(f"took {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
