"""Speed benchmarks and full-size experiments of seqrec_nb, one module each, run from the repository root:

    python -m benchmarks.lstm --json results/bench/lstm.json                # an LSTMRec epoch against its FLOP bound
    python -m benchmarks.lstm --quality --json results/bench/lstm_quality.json    # what the benchmark's batch size trains
    python -m benchmarks.lstm_profile --json results/bench/lstm_profile.json      # an LSTMRec step, stage by stage
    python -m benchmarks.sasrec --json results/bench/sasrec.json            # a SASRec epoch against its FLOP bound
    python -m benchmarks.vae                                                # Mult-VAE, Mult-DAE and SeqVAE epochs
    python -m benchmarks.fit_input --json results/bench/fit_input.json      # how late each epoch starts, two input pipelines
    python -m benchmarks.arima --items 500                                  # per-item SARIMA fits, serial against parallel
    python -m benchmarks.compare_losses --model sasrec --data games --epochs 6 --out results/losses
    python -m benchmarks.reproduce_sasrec --style reference --padded --json FILE

`benchmarks.timing` holds what they share: the peak memory of a process, the matrix-multiply rate of the
backend, running one configuration in a fresh process, and the provenance (commit, versions, command) that
every file they write records. The appendix `nbs/95_performance.ipynb` explains what the speed benchmarks
count and renders their latest results; `results/README.md` says which command wrote which file.
"""
