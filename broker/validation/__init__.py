"""Input validation: identifier rules shared by every dialect."""
