"""What each instruction-set level of the kernels is worth: fastmlp's s/epoch on C1-C4 at every
level this CPU runs (FASTMLP_ISA=baseline, avx2, avx512), each in its own process.

    python benchmarks/bench_isa.py [--configs C1,C2,C3,C4] [--epochs 3] [--threads 1] [--markdown]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

from fastmlp.bench import CONFIGS, load_data, machine_info, table, time_config


def child(config_names, epochs, threads):
    """In a process whose FASTMLP_ISA is set: time fastmlp alone and print JSON results."""
    import fastmlp

    fastmlp.set_num_threads(threads)
    data = load_data(np.float32)
    results = [dict(row, isa=fastmlp.kernel_isa())
               for name in config_names
               for row in time_config(CONFIGS[name], (), data, np.float32, warmup=1, epochs=epochs, threads=threads)]
    print(json.dumps({"machine": machine_info(), "results": results}))   # the threads it ran with


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="C1,C2,C3,C4")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.configs.split(",")
    if args.child:
        return child(names, args.epochs, args.threads)
    from fastmlp import _kernels

    levels = ["baseline"] + [level for level in ("avx2", "avx512") if level in _kernels.build_info()["cpu_levels"]]
    rows = {}
    for level in levels:
        env = dict(os.environ, FASTMLP_ISA=level, OPENBLAS_NUM_THREADS="1")
        output = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--configs", args.configs,
                                 "--epochs", str(args.epochs), "--threads", str(args.threads)],
                                env=env, check=True, capture_output=True, text=True).stdout
        child_output = json.loads(output.splitlines()[-1])
        for result in child_output["results"]:
            rows[result["config"], level] = (result["isa"], float(np.median(result["seconds"])))
    print(" ".join(f"{key}: {value}" for key, value in child_output["machine"].items()))
    body = [[name, level, isa, f"{seconds:.4f}", f"{rows[name, 'baseline'][1] / seconds:.2f}x"]
            for name in names for level in levels for isa, seconds in [rows[name, level]]]
    print(table(["config", "FASTMLP_ISA", "level used", "median s/epoch", "vs baseline"], body, args.markdown))


if __name__ == "__main__":
    main()
