"""Spreadsheet exports for people: invoice data and the prescriber register."""
