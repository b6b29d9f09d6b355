# iCalendar judges: Python's `icalendar` package (tests/py/test_ical_*.py)
# and the IANA zone data that scripts/gen-tz-table.py reads. Sourced by
# scripts/setup.sh with POSTWIRE_VENV, apt_install and pip_install set.
apt_install tzdata
pip_install "icalendar>=6,<7"
