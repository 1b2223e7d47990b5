"""ImageExampleGen: image class folders -> gzipped TFRecords of tf.Example."""
