"""Local two-account AWS world for snapcourier's tests: moto 5.2.5 plus the
behaviours of RDS that the product relies on and stock moto lacks.

Run it with ``python -m snapcourier_emulator serve --state-file PATH``; see
README.md beside this package for the contract.
"""

SOURCE_ACCOUNT = "111111111111"
DESTINATION_ACCOUNT = "222222222222"
ACCOUNTS = {"source": SOURCE_ACCOUNT, "destination": DESTINATION_ACCOUNT}
REGIONS = ["us-east-1", "eu-west-1"]
