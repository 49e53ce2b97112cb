"""placeholder"""
def is_value_dir(path):
    return False
