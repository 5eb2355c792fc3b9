"""Pod attribution: which pods and containers hold and use each GPU."""
