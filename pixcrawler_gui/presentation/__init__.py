"""Plain (non-Qt) helpers for the screens: how jobs are put into words, the crawl form as data."""
