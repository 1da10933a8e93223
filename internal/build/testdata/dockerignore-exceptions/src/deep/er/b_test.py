src/deep/er/b_test.py
