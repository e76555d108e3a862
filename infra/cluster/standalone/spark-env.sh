# Spark standalone on plain hosts (no Kubernetes): source this on every master/worker host, then
#   $SPARK_HOME/bin/spark-class org.apache.spark.deploy.master.Master --host $(hostname -f) --port 7077
#   $SPARK_HOME/bin/spark-class org.apache.spark.deploy.worker.Worker --cores 8 --memory 28g spark://<master>:7077
# (pip's pyspark has bin/spark-class but no sbin/ scripts; run the daemons under systemd.)
export SPARK_HOME=/opt/redcloud/venv/lib/python3.11/site-packages/pyspark
export PYSPARK_PYTHON=/opt/redcloud/venv/bin/python      # identical path and packages on every host
export TZ=Asia/Shanghai
export SPARK_NO_DAEMONIZE=1
export SPARK_WORKER_DIR=/data/spark/work
export SPARK_LOCAL_DIRS=/data/spark/tmp                   # fast local disks: shuffle and spill
export SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false"
export SPARK_WORKER_OPTS="-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=86400"
