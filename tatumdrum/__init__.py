"""tatumdrum: tatum-level drum transcription (Ishizuka et al.), from audio to a drum score."""
__version__ = "0.1.0"
