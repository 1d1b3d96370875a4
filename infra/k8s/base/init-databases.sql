-- One database per service on the clipguard PostgreSQL: MLflow's backend store, Feast's SQL
-- registry and the bank database (run once, on the first start of an empty volume).
CREATE DATABASE mlflow OWNER clipguard;
CREATE DATABASE feast OWNER clipguard;
CREATE DATABASE banks OWNER clipguard;
