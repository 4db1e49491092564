"""The footage a LoRA's dataset is made from (a source video, not a generated one: videos.py):
its decoding, scenes and transitions, each frame's scores, the faces in it and whose they are, and
the frames chosen and cropped (dataset.py puts them together)."""
