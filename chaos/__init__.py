"""`make chaos`: the whole system under a seeded fault script, then its invariants checked.

- `script.py`  the fault script as a seeded plan (pure)
- `driver.py`  carries it out: faults, websocket drops, SIGKILLs, cascades, panic, /kill
- `processes.py`  the Procfile's processes one by one, killable and restartable
- `records.py`, `invariants.py`  plain records and the invariants over them (pure)
- `collect.py`  the records from the simulator's record, the database and the logs
- `report.py`  the table; `clients.py` HTTP to the simulator and the panel;
  `telegram_stub.py` a Bot API for the telegram process
"""
