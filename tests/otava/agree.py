"""Change points of each series of a CSV file by Apache Otava's own analysis, for tests/otava.rs.

    agree.py SERIES.csv WINDOW P_VALUE MIN_CHANGE [stock|retest-both]

Each line of SERIES.csv is one series: an id, then its values. Each series goes through
Otava's library API the way `otava analyze` takes a test's metric (Series -> analyze with
AnalysisOptions). Prints one JSON object a line: {"id", "indices", "p_values"}.

`retest-both` swaps in a merge step that, after dropping a change point, tests both its
neighbours again (Otava 0.8.0 tests the next one and the one after it, leaving the previous
one's statistics stale), as benchbox does: with it, the two should agree on every series.
"""

import csv
import json
import sys

import otava.analysis
from otava.analysis import TTestSignificanceTester
from otava.series import AnalysisOptions, Metric, Series


def merge_retesting_both(change_points, series, max_pvalue, min_magnitude):
    """Otava's merge step, except that both neighbours of a dropped point are tested again."""
    tester = TTestSignificanceTester(max_pvalue)
    while change_points:
        weakest = max(change_points, key=lambda c: c.stats.pvalue)
        if weakest.stats.pvalue < max_pvalue:
            weakest = min(change_points, key=lambda c: c.stats.change_magnitude())
            if weakest.stats.change_magnitude() > min_magnitude:
                return change_points
        i = change_points.index(weakest)
        del change_points[i]
        intervals = tester.get_intervals(change_points)
        for j in (i - 1, i):
            if 0 <= j < len(change_points):
                candidate = change_points[j].to_candidate()
                change_points[j] = tester.change_point(candidate, series, intervals)
    return change_points


def main() -> None:
    path, window, p_value, min_change = sys.argv[1:5]
    variant = sys.argv[5] if len(sys.argv) > 5 else "stock"
    if variant == "retest-both":
        # compute_change_points looks `merge` up in its module at each call.
        otava.analysis.merge = merge_retesting_both
    elif variant != "stock":
        sys.exit(f"agree.py: unknown variant {variant!r} (hint: stock or retest-both)")
    options = AnalysisOptions()
    options.window_len = int(window)
    options.max_pvalue = float(p_value)
    options.min_magnitude = float(min_change)
    with open(path, newline="") as f:
        for row in csv.reader(f):
            series_id, values = row[0], [float(v) for v in row[1:]]
            series = Series(
                test_name=series_id,
                branch=None,
                time=list(range(len(values))),
                metrics={"value": Metric()},
                data={"value": values},
                attributes={},
            )
            points = series.analyze(options).change_points.get("value", [])
            print(json.dumps({
                "id": series_id,
                "indices": [int(p.index) for p in points],
                "p_values": [float(p.stats.pvalue) for p in points],
            }))


if __name__ == "__main__":
    main()
