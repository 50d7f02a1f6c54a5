"""Checks a user can run: `pixcrawler doctor` (verify), and the generated site and checks behind
`pixcrawler self-test`.
"""
