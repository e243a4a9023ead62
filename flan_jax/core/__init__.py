"""What every job builds on: the device mesh and logical sharding rules (`partitioning`),
T5X's Adafactor and its schedules (`optim`), and the training losses (`losses`)."""
