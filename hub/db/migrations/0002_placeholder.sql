-- local placeholder for another branch's 0002; never committed
SELECT 1;
