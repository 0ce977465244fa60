"""Time per-item SARIMA fitting on Online Retail (daily purchases of the top items), serial against every core.

    python -m benchmarks.arima --items 500 --repeats 3

Prints one row per setting: workers, median wall time over the repeats, time per series and the
speed-up over the serial run (`seqrec_nb.arima.benchmark_fits`). Needs the Online Retail data
(SEQREC_DATA, the cache, or a download).
"""
import argparse

from seqrec_nb.arima import benchmark_fits
from seqrec_nb.arma import demand
from seqrec_nb.data import load_online_retail


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=500, help="fit the N largest items (default 500)")
    p.add_argument("--repeats", type=int, default=3, help="repeats per setting; the median is reported (default 3)")
    p.add_argument("--horizon", type=int, default=28)
    a = p.parse_args(argv)
    events = demand(load_online_retail(), value="rows")      # purchases per item per day, as ARIMAPopularity fits
    table = benchmark_fits(events, n_items=a.items, horizon=a.horizon, repeats=a.repeats, progress=True)
    print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
