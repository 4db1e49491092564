"""provider cluster's training framework: the loop, its checkpoints and their write-once storage,
the watch, resume after SIGKILL, continue, several processes under torchrun, the outcome and the
bill, whatever model family it trains (families/)."""
