"""docent's quality gauges and tools: measurement lives here, never in the product rooms; nothing in bot/, knowledge/, admin/ or connectors/ imports it at module level."""
