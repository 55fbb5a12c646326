def summary_html(result):
    return f"<pre>{result}</pre>"
