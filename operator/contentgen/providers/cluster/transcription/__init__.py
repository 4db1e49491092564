"""provider cluster's transcription: Whisper on faster-whisper (CTranslate2) and the CUDA libraries
it loads."""
