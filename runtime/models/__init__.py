"""What runs a bundle: texts in, probabilities, attention and translations out. Knows no file.

classifier: `Classifier` (token-budget batches, explanations); translator: `Translator`, `Translation`;
search: the one decode loop (greedy = beam 1); segment: long sources into sentences and windows;
copying: numbers forced through and unknown words copied by attention.
"""
