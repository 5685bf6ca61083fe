"""Sample engagements through the whole regulation, and the driver that plays everyone around them."""
