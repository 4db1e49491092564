"""provider: cluster, the cluster's own GPUs: LoRA training and image generation on diffusers +
peft (FLUX), transcription on faster-whisper, inside the worker Job. Weights come only from a
staged directory (`models`), never from a hub; torch and the models' libraries are the `gpu`
extra, imported on demand."""
