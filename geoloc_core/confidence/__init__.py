"""A confidence for every answer: radii (km) that hold the true location with a stated
probability, estimated from what the inference chain knows and calibrated on validation."""
