"""The rules of the business: pure Python, no framework, time passed in as an argument."""
