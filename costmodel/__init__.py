"""Cost model for neural networks on Arm Cortex-M: analysis of .tflite models and a learned latency table."""
