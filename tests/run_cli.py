"The command line in the test's own process, for the tests of bad arguments and bad input."
from seqrec_nb.benchmark import main


def run_main(argv, capsys):
    "`seqrec-nb ARGV` in this process: (exit code, stdout, stderr); argparse's own exits included."
    try: code = main([str(a) for a in argv])
    except SystemExit as e: code = e.code
    out, err = capsys.readouterr()
    return code, out, err
