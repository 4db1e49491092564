"""The model families provider cluster trains LoRAs for (FLUX.1, Wan 2.1, Wan 2.2's expert pair):
each what its models need of the training framework (training/), and the models themselves."""
