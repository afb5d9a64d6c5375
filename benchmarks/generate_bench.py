"""Time ``deltalab generate`` (issue 17): 30 variants of the many-to-one RNN template with every
constraint it can take (no saturation, no ties, non-zero gradients, distinct), goal < 10 s.

    python benchmarks/generate_bench.py [--variants 30] [--template NAME] [--repeats 3]
                                        [--plant-mistake ID]

Prints the median wall time of the draw loop and of the whole run (files included), the draws
and the tries per variant; with --plant-mistake also the whole run with that mistake planted
in every variant (each planted solution graded by check).
"""
from __future__ import annotations

import argparse
import statistics
import time

from deltalab.exercises import generate, load_template, template_path
from deltalab.exercises.engine import generate_variants


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", type=int, default=30)
    parser.add_argument("--template", default="rnn-many-to-one-softmax")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plant-mistake", default="sum_over_time_missing", metavar="ID")
    args = parser.parse_args()
    template = load_template(template_path(args.template))
    loop, whole, planted = [], [], []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        generation = generate_variants(template, args.variants, seed=repeat)
        loop.append(time.perf_counter() - start)
        start = time.perf_counter()
        generate(template, variants=args.variants, seed=repeat, moodle=True, stress=True)
        whole.append(time.perf_counter() - start)
        start = time.perf_counter()
        generate(template, variants=args.variants, seed=repeat, moodle=True, stress=True,
                 plant_mistake=args.plant_mistake)
        planted.append(time.perf_counter() - start)
        print(f"seed {repeat}: {generation.draws} draws for {args.variants} variants "
              f"({generation.draws / args.variants:.1f} per variant), rejected {dict(generation.rejections)}")
    print(f"{args.template}, {args.variants} variants: draw loop {statistics.median(loop):.2f} s, "
          f"with every file (3 sheets, 3 keys, answers, quiz, stress) {statistics.median(whole):.2f} s (median of "
          f"{args.repeats}); with --plant-mistake {args.plant_mistake} {statistics.median(planted):.2f} s")


if __name__ == "__main__":
    main()
