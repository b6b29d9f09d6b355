# iCalendar judges: Python's `icalendar` package and dateutil (which expands
# RRULEs in tests/py/test_ical_*.py), and the IANA zone data that Python's
# zoneinfo and scripts/gen-tz-table.py read. Sourced by scripts/setup.sh
# with POSTWIRE_VENV, apt_install and pip_install set.
apt_install tzdata
pip_install "icalendar>=6,<7" python-dateutil
