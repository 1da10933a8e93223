src/a_test.py
