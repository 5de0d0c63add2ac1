"""The review page: server-rendered page shells and our own small JavaScript over the HTTP API."""
