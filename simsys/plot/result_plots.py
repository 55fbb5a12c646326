class ResultPlots:
    def __init__(self, result):
        self.result = result
