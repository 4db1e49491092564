"""provider cluster's generation: pictures and clips drawn on the cluster's GPUs, the kept
pipelines, and the warm pools that draw for Jobs."""
