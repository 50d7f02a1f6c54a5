"""A website cut into shards: one reader queues its images in Redis and every shard takes from the
queue.
"""
