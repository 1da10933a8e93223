src/deep/keep_test.py
