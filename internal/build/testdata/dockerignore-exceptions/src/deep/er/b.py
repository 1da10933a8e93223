src/deep/er/b.py
