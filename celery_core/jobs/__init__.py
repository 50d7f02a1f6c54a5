"""Jobs: the job-file model and its errors, work items, submit/read/cancel/retry, the pure state
functions, and the Redis key layout.
"""
