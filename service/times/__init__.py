"""Time on the wire and in the database: integer microseconds since the epoch, UTC, everywhere in the service.

    timefmt    one RFC 3339 time or JSON number ⇄ µs (parse_time, format_time), and the one US_PER_S
    timevec    many times at once, vectorised with numpy (the ingest path's million per request)
    durations  `step`, `horizon`, `context`: seconds or ISO 8601 (`PT15M`) ⇄ µs

Imports nothing else of the service: every other folder may import it.
"""
